
apihost-7